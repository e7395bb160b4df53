# Assistant-only labels from {% generation %} blocks, no Python needed.
lorad_add_test(training_data_generation_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/training_data_generation_test.cc
  LIBS lorad::model)
