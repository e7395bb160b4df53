# Load: the real daemon and worker under 64 concurrent streaming clients
# (uses the integration tests' process and client helpers).
if(TARGET lorad_it_support AND TARGET lorad-worker)
  add_executable(load_bench ${CMAKE_CURRENT_LIST_DIR}/load_bench.cc)
  target_link_libraries(load_bench PRIVATE lorad_it_support
                        absl::flags absl::flags_parse absl::flags_usage
                        nlohmann_json::nlohmann_json)
  add_dependencies(load_bench lorad lorad-worker)
endif()
