# Many jobs on one base: fused micro-batches give each job the adapter it
# gets alone (SFT of different lengths, SFT beside DPO, checkpointing), and
# a job that leaves early does not hold the others.
if(LORAD_WITH_TORCH)
  lorad_add_test(training_group_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/training_group_test.cc
    LIBS lorad::worker lorad::common)
  target_precompile_headers(training_group_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(training_group_test PROPERTIES TIMEOUT 600)
endif()
