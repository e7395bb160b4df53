if(LORAD_WITH_TORCH)
  lorad_add_test(lora_math_test SRCS ${CMAKE_CURRENT_LIST_DIR}/lora_math_test.cc
    LIBS lorad::worker lorad::kernels_ref)
  lorad_add_test(checkpointing_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/checkpointing_test.cc LIBS lorad::worker)
  lorad_add_test(fused_adamw_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/fused_adamw_test.cc LIBS lorad::worker)
  lorad_add_test(intra_op_threads_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/intra_op_threads_test.cc
    LIBS lorad::worker lorad::model)
  lorad_add_test(trainer_test SRCS ${CMAKE_CURRENT_LIST_DIR}/trainer_test.cc
    LIBS lorad::worker)
  lorad_add_test(hf_parity_test SRCS ${CMAKE_CURRENT_LIST_DIR}/hf_parity_test.cc
    LIBS lorad::worker)
  # The checkpoint file format is private to the engine; its test reaches
  # it (and the test FaultInjectionEnv) directly.
  lorad_add_test(train_checkpoint_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/train_checkpoint_test.cc
    LIBS lorad::worker absl::synchronization)
  target_include_directories(train_checkpoint_test PRIVATE
    ${PROJECT_SOURCE_DIR}/worker/src/engine)
  foreach(t lora_math_test checkpointing_test fused_adamw_test
            intra_op_threads_test trainer_test
            hf_parity_test train_checkpoint_test)
    target_precompile_headers(${t} REUSE_FROM lorad_worker_lib)
  endforeach()
  set_tests_properties(trainer_test hf_parity_test PROPERTIES TIMEOUT 900)
endif()
