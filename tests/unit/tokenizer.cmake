lorad_add_test(tokenizer_test SRCS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc LIBS lorad::model)
lorad_add_test(model_config_test SRCS ${CMAKE_CURRENT_LIST_DIR}/model_config_test.cc
  LIBS lorad::model)
lorad_add_test(training_data_trl_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/training_data_trl_test.cc LIBS lorad::model)
lorad_add_test(model_inspect_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/model_inspect_test.cc LIBS lorad::model)
