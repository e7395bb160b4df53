lorad_add_test(dataset_test SRCS ${CMAKE_CURRENT_LIST_DIR}/dataset_test.cc
  LIBS lorad::common)
