# AdamW with 8-bit state, against bitsandbytes' AdamW8bit (a Python peer run
# at test time; skipped without a venv that has bitsandbytes).
if(LORAD_WITH_TORCH)
  lorad_add_test(adamw8bit_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/adamw8bit_test.cc
    LIBS lorad::worker lorad::common)
  # The trainer's checkpoint files are private to the engine; the round trip
  # through them reaches in as train_checkpoint_test does.
  target_include_directories(adamw8bit_test PRIVATE
    ${PROJECT_SOURCE_DIR}/worker/src/engine)
  target_precompile_headers(adamw8bit_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(adamw8bit_test PROPERTIES TIMEOUT 600)
endif()
