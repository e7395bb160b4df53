# SentencePiece-style tokenizers and special tokens against HF tokenizers /
# transformers, built at test time by tests/golden/tokenizer_spm_peer.py.
lorad_add_test(tokenizer_spm_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_spm_test.cc LIBS lorad::model)
lorad_add_test(tokenizer_special_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_special_test.cc LIBS lorad::model)
