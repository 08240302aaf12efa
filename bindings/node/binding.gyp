# node-gyp build of the addon against an installed libknytt (make install):
#   npm run build            (or: node-gyp rebuild --nodedir=/usr for
#                             offline builds with the system headers)
# In a source checkout, `make bindings` builds build/node/knytt.node
# instead, linked to build/libknytt.so.
{
  "targets": [{
    "target_name": "knytt",
    "sources": ["src/addon.c", "src/index.c", "src/store.c", "src/engine.c",
                "src/models.c", "src/store_read.c",
                "src/store_embed.c", "src/embedder.c"],
    "cflags_c": ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra"],
    "include_dirs": ["../../include", "<!@(pkg-config --cflags-only-I knytt 2>/dev/null | sed s/-I//g)"],
    "libraries": ["<!@(pkg-config --libs knytt 2>/dev/null || echo -lknytt)"]
  }]
}
