# The worker's memory numbers (CPU here; the CUDA case on a GPU host).
if(LORAD_WITH_TORCH)
  lorad_add_test(device_memory_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/device_memory_test.cc LIBS lorad::worker)
  target_precompile_headers(device_memory_test REUSE_FROM lorad_worker_lib)
endif()
