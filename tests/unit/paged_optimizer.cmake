# Paged optimizers (paged_adamw, paged_adamw_8bit): unchanged updates, the
# CPU no-op, managed memory on CUDA (where a device is visible).
if(LORAD_WITH_TORCH)
  lorad_add_test(paged_optimizer_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/paged_optimizer_test.cc
    LIBS lorad::worker lorad::cuda_bridge lorad::common)
  target_precompile_headers(paged_optimizer_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(paged_optimizer_test PROPERTIES TIMEOUT 600)
endif()
