lorad_add_test(nf4_test SRCS ${CMAKE_CURRENT_LIST_DIR}/nf4_test.cc
  LIBS lorad::kernels_ref lorad::worker_formats)
