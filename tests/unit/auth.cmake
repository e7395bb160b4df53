# API tokens, roles and call limits (server/src/auth/), and loractl's token
# and TLS settings.
lorad_add_test(auth_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/auth_token_table_test.cc
       ${CMAKE_CURRENT_LIST_DIR}/auth_roles_test.cc
       ${CMAKE_CURRENT_LIST_DIR}/auth_gatekeeper_test.cc
       ${CMAKE_CURRENT_LIST_DIR}/auth_ownership_test.cc
  LIBS lorad::server_internals)
lorad_add_test(auth_loractl_credentials_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/auth_loractl_credentials_test.cc
  LIBS lorad::client)
