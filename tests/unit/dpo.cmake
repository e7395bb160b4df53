# DPO: the preference dataset format, its tokenization as TRL's DPOTrainer
# does it, and the worker's DPO objective against TRL on the same pairs.
lorad_add_test(dataset_preference_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/dataset_preference_test.cc LIBS lorad::common)
lorad_add_test(preference_data_trl_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/preference_data_trl_test.cc LIBS lorad::model)
set_tests_properties(preference_data_trl_test PROPERTIES TIMEOUT 600)
