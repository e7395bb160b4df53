lorad_add_test(common_test SRCS ${CMAKE_CURRENT_LIST_DIR}/files_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/env_test.cc
  LIBS lorad::common absl::synchronization)
