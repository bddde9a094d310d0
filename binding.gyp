{
  # Install-time fallback and prebuildify build (node-gyp). Same sources as CMakeLists.txt (CPU only);
  # LibTorch paths and the C++ ABI come from scripts/find-libtorch.js, the one shared discovery.
  "targets": [
    {
      "target_name": "radkit",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.js --include)",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=<!(node scripts/find-libtorch.js --abi)"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++14"],
      # -fopenmp at compile time only, as in CMakeLists.txt: at::parallel_for's pragma needs it, and
      # the OpenMP symbols resolve to the runtime LibTorch loads.
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fopenmp", "-Wno-unused-parameter", "-Wno-sign-compare"],
      "libraries": [
        "-L<!(node scripts/find-libtorch.js --libdir)",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,-rpath,<!(node scripts/find-libtorch.js --libdir)",
        "-Wl,--disable-new-dtags"
      ]
    }
  ]
}
