{
  # One addon target. Shared sources first; each OS condition adds its
  # backends and the matching AIO_HAVE_* define (selector.cc reads them).
  "targets": [
    {
      "target_name": "aionode",
      "sources": [
        "native/module.cc",
        "native/errors.cc",
        "native/selector_wrap.cc",
        "native/loop_wrap.cc",
        "native/wait_thread.cc",
        "native/socket_wrap.cc",
        "native/selector.cc",
        "native/proactor.cc",
        "native/proactor_wrap.cc",
        "native/timer_heap.cc",
        "native/batch.cc",
        "native/clock.cc",
        "native/timer_fd.cc",
        "native/errno_table.cc",
        "native/threadsafe_channel.cc",
        "native/channel_wrap.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS",
                  "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/socket_ops_unix.cc",
            "native/spawn.cc",
            "native/spawn_wrap.cc",
            "native/backends/epoll_selector.cc",
            "native/backends/poll_selector.cc",
            "native/backends/select_selector.cc",
            "native/backends/io_uring_proactor.cc"
          ],
          "defines": ["AIO_HAVE_EPOLL", "AIO_HAVE_POLL", "AIO_HAVE_SELECT",
                      "AIO_HAVE_IO_URING"]
        }],
        ["OS=='mac' or OS=='freebsd' or OS=='openbsd'", {
          "sources": [
            "native/socket_ops_unix.cc",
            "native/spawn.cc",
            "native/spawn_wrap.cc",
            "native/backends/poll_selector.cc",
            "native/backends/select_selector.cc"
          ],
          "defines": ["AIO_HAVE_POLL", "AIO_HAVE_SELECT"]
        }]
      ]
    }
  ]
}
