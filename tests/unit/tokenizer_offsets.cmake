# Token offsets against HF tokenizers, built at test time by
# tests/golden/tokenizer_offsets_peer.py.
lorad_add_test(tokenizer_offsets_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_offsets_test.cc LIBS lorad::model)
