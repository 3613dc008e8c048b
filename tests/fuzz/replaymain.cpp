// SPDX-License-Identifier: BSD-3-Clause
// A main() for a fuzz target without libFuzzer: runs every file named on the command line, or
// found in a directory named there, through LLVMFuzzerTestOneInput() once. The gcc build links
// each target with it to replay the seed corpus and the regressions as ctest tests.
// Like ./dev.sh fuzz's -rss_limit_mb=512, it fails once the process has used more than 512 MiB.

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv);
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace fs = std::filesystem;

constexpr long RssLimitKiB = 512 * 1024;

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg(argv[i]);
        if (fs::is_directory(arg)) {
            for (const fs::directory_entry &entry : fs::recursive_directory_iterator(arg)) {
                if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
                    inputs.push_back(entry.path());
            }
        } else if (fs::exists(arg)) {
            inputs.push_back(arg);
        }
        // A directory that does not exist (no regressions yet) is fine.
    }
    if (inputs.empty()) {
        std::fprintf(stderr, "no inputs found: is the corpus there?\n");
        return 1;
    }
    std::sort(inputs.begin(), inputs.end());
    for (const fs::path &path : inputs) {
        std::ifstream file(path, std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
        // Printed first, so that a crash's output names the input.
        std::fprintf(stderr, "%s (%zu bytes)\n", path.c_str(), bytes.size());
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        if (usage.ru_maxrss > RssLimitKiB) {
            std::fprintf(stderr, "%s: the process used %ld MiB (limit 512)\n", path.c_str(), usage.ru_maxrss / 1024);
            return 1;
        }
    }
    std::fprintf(stderr, "%zu inputs replayed\n", inputs.size());
    return 0;
}
