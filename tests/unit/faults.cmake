# Faults, so nothing is lost (issue 10): the single writer of the tiny model,
# the data-directory lock, store errors during a job, start-up cleanup.
lorad_add_test(faults_tiny_model_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/faults_tiny_model_test.cc
  LIBS lorad::model)

lorad_add_test(faults_db_durability_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/faults_db_durability_test.cc
  LIBS lorad::server_internals)

lorad_add_test(faults_job_transaction_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/faults_job_transaction_test.cc
  LIBS lorad::server_internals SQLite::SQLite3)

lorad_add_test(faults_data_dir_lock_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/faults_data_dir_lock_test.cc
  LIBS lorad::server_internals)
