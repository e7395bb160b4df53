lorad_add_test(tokenizer_test SRCS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc LIBS lorad::model)
