# JSON constrained decoding (model/json_constraint.h): random walks on the
# tiny, golden byte-level and SentencePiece-style tokenizers, checked with
# Python's jsonschema (tests/golden/json_constraint_peer.py).
lorad_add_test(json_constraint_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/json_constraint_test.cc LIBS lorad::model)
