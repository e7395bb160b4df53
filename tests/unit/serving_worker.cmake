# Worker-side serving: adapter pool, continuous batching with mixed
# adapters, merged export, PEFT-made adapters, the worker's serving RPCs.
if(LORAD_WITH_TORCH)
  foreach(t serving_pool_test serving_batch_test serving_export_test
            serving_peft_test)
    lorad_add_test(${t} SRCS ${CMAKE_CURRENT_LIST_DIR}/${t}.cc
      LIBS lorad::worker)
    target_precompile_headers(${t} REUSE_FROM lorad_worker_lib)
  endforeach()
  lorad_add_test(serving_worker_rpc_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/serving_worker_rpc_test.cc
    LIBS lorad::worker_service)
  target_precompile_headers(serving_worker_rpc_test
    REUSE_FROM lorad_worker_lib)
  # lorad-worker runs with a passive OpenMP wait policy (worker_main.cc);
  # the in-process tests do the same.
  set_tests_properties(serving_pool_test serving_batch_test serving_peft_test
    serving_export_test serving_worker_rpc_test PROPERTIES TIMEOUT 900
    ENVIRONMENT OMP_WAIT_POLICY=passive)
endif()
