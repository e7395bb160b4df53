# Serving: adapter pool, continuous batching with mixed adapters, merged
# export, PEFT-made adapters (issue 3, worker side).
if(LORAD_WITH_TORCH)
  foreach(t serving_pool_test serving_batch_test serving_export_test
            serving_peft_test)
    lorad_add_test(${t} SRCS ${CMAKE_CURRENT_LIST_DIR}/${t}.cc
      LIBS lorad::worker)
    target_precompile_headers(${t} REUSE_FROM lorad_worker_lib)
  endforeach()
  set_tests_properties(serving_batch_test serving_peft_test serving_export_test
    PROPERTIES TIMEOUT 900)
endif()
