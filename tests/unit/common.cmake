lorad_add_test(common_test SRCS ${CMAKE_CURRENT_LIST_DIR}/files_test.cc
  LIBS lorad::common)
