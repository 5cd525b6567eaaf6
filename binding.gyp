# Sources and flags come from native/build.json, which native/CMakeLists.txt reads too.
{
  "targets": [
    {
      "target_name": "stripemover",
      "sources": ["<!@(node -p \"(b=>b.core.concat(b.napi).join(' '))(require('./native/build.json'))\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["<!@(node -p \"require('./native/build.json').defines.join(' ')\")"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<!@(node -p \"require('./native/build.json').cflags.join(' ')\")"],
      "libraries": ["<!@(node -p \"require('./native/build.json').libraries.join(' ')\")"]
    }
  ]
}
