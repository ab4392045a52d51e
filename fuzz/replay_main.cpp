// Runs a libFuzzer target without libFuzzer: LLVMFuzzerTestOneInput once on every file named on the
// command line or found (recursively) in a directory named there, in sorted order. This is how the
// committed corpus runs in the normal test suite (ctest -R fuzz_replay), with gcc and with ASan.
// Exits 1 if no input file was found or a path does not exist; a failed invariant aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (fs::recursive_directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec)) files.push_back(it->path());
      if (ec) {
        std::fprintf(stderr, "%s: cannot list %s: %s\n", argv[0], argv[i], ec.message().c_str());
        return 1;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: no such file or directory: %s\n", argv[0], argv[i]);
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...: runs the fuzz target on each file; no files given\n",
                 argv[0]);
    return 1;
  }
  std::sort(files.begin(), files.end());

  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read %s\n", argv[0], f.c_str());
      return 1;
    }
    // Exactly the file's bytes in their own allocation, so that ASan catches a read past the end, as
    // under libFuzzer.
    std::vector<std::uint8_t> input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    static const std::uint8_t no_bytes = 0;
    std::fprintf(stderr, "running %s (%zu bytes)\n", f.c_str(), input.size());
    LLVMFuzzerTestOneInput(input.empty() ? &no_bytes : input.data(), input.size());
  }
  std::printf("ran %zu inputs\n", files.size());
  return 0;
}
