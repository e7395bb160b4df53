# {% generation %} spans against transformers (tests/golden/
# jinja_generation_peer.py, run at test time).
lorad_add_test(jinja_generation_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/jinja_generation_test.cc LIBS lorad::model)
