lorad_add_test(job_store_test SRCS ${CMAKE_CURRENT_LIST_DIR}/job_store_test.cc
  LIBS lorad::server_internals)
