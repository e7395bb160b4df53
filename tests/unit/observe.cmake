# Telemetry consumers: lorad's Prometheus metrics, loractl smi/plot/watch.
lorad_add_test(metrics_test SRCS ${CMAKE_CURRENT_LIST_DIR}/metrics_test.cc
  LIBS lorad::server_internals)
lorad_add_test(loractl_observe_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_observe_test.cc
  LIBS lorad_client_lib)
