# Issue 15's job options on the server side: method / DPO / quantization /
# paged optimizers validated against the request and its datasets, and the
# worker's DPO numbers carried into public events.
lorad_add_test(job_validation_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/job_validation_test.cc
  LIBS lorad::server_internals lorad::model)
lorad_add_test(train_events_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/train_events_test.cc
  LIBS lorad::server_internals)
lorad_add_test(openai_training_options_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/openai_training_options_test.cc
  LIBS lorad::server_internals nlohmann_json::nlohmann_json)
