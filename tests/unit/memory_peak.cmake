# The training memory estimate within 15% of the measured peak, one fresh
# process per choice: optimizers, checkpointing, DPO, the int8 base.
if(LORAD_WITH_TORCH)
  lorad_add_test(memory_peak_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/memory_peak_test.cc
    LIBS lorad::worker lorad::common)
  target_precompile_headers(memory_peak_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(memory_peak_test PROPERTIES TIMEOUT 900)
endif()
