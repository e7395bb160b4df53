# DPO: the preference dataset format, its tokenization as TRL's DPOTrainer
# does it, and the worker's DPO objective against TRL on the same pairs.
lorad_add_test(dataset_preference_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/dataset_preference_test.cc LIBS lorad::common)
lorad_add_test(preference_data_trl_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/preference_data_trl_test.cc LIBS lorad::model)
set_tests_properties(preference_data_trl_test PROPERTIES TIMEOUT 600)
if(LORAD_WITH_TORCH)
  lorad_add_test(dpo_trainer_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/dpo_trainer_test.cc LIBS lorad::worker)
  lorad_add_test(dpo_trl_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/dpo_trl_test.cc LIBS lorad::worker)
  foreach(t dpo_trainer_test dpo_trl_test)
    target_precompile_headers(${t} REUSE_FROM lorad_worker_lib)
  endforeach()
  # DpoLoss is private to the engine; the test reaches it directly.
  target_include_directories(dpo_trainer_test PRIVATE
    ${PROJECT_SOURCE_DIR}/worker/src/engine)
  set_tests_properties(dpo_trainer_test dpo_trl_test PROPERTIES TIMEOUT 900)
endif()
