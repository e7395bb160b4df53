# The Jinja interpreter and the chat templates built on it (lorad::model).
lorad_add_test(jinja_test SRCS ${CMAKE_CURRENT_LIST_DIR}/jinja_test.cc LIBS lorad::model)
lorad_add_test(chat_template_test SRCS ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cc LIBS lorad::model)
