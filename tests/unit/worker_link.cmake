# The server's link to the worker: WorkerClient (readiness, deadlines,
# cancellation, Train liveness, the Generate stream) against a small fake
# worker process, and the TimerQueue it shares with the telemetry streams.
add_executable(lorad_fake_worker ${CMAKE_CURRENT_LIST_DIR}/fake_worker.cc)
target_link_libraries(lorad_fake_worker PRIVATE lorad::proto gRPC::grpc++
  absl::strings)

lorad_add_test(worker_client_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/worker_client_test.cc
  LIBS lorad::server_internals)
add_dependencies(worker_client_test lorad_fake_worker)
target_compile_definitions(worker_client_test PRIVATE
  LORAD_FAKE_WORKER="$<TARGET_FILE:lorad_fake_worker>")
set_tests_properties(worker_client_test PROPERTIES TIMEOUT 300)

lorad_add_test(timer_queue_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/timer_queue_test.cc
  LIBS lorad::server_internals)
