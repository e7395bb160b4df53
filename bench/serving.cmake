# Serving: continuous-batching decode throughput with base / shared /
# distinct adapters, adapter load to first token, latency beside training.
if(TARGET lorad::worker)
  add_executable(serving_bench ${CMAKE_CURRENT_LIST_DIR}/serving_bench.cc)
  target_link_libraries(serving_bench PRIVATE lorad_bench_models lorad::worker
                        absl::flags absl::flags_parse absl::flags_usage
                        nlohmann_json::nlohmann_json)
  target_precompile_headers(serving_bench REUSE_FROM lorad_worker_lib)
endif()
