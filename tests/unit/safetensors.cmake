lorad_add_test(safetensors_test SRCS ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cc
  LIBS lorad::model)
