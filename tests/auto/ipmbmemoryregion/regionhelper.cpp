// SPDX-License-Identifier: BSD-3-Clause
// The helper process of tst_ipmbmemoryregion. It inherits a region's descriptor from the test
// (the number comes on the command line), maps it with IpmbMemoryRegion::fromHandle() and does
// one thing, reporting on stdout one line per step; commands come on stdin, one per line.
//   write <fd> <text>       prints "saw <text at offset 0>", writes <text> at offset 4096, "written"
//   hold <fd>               prints "refcount=<n>", then exits on the stdin line "quit"
//   increment <fd> <count>  prints "ready", waits for "go", does <count> locked increments of the
//                           quint64 at offset 0, prints "done interleaved=<n>"
//   lock <fd>               prints "mapped", locks, prints "locked", then on "unlock" unlocks,
//                           prints "unlocked" and exits (the test may SIGKILL it while locked)
// Failures print "error <text>" and exit non-zero. A watchdog ends the process after 60 s.

#include <IpmbQt/IpmbMemoryRegion>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

static void say(const std::string &line)
{
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

static int fail(const std::string &what)
{
    say("error " + what);
    return 2;
}

static std::string readLine()
{
    char buffer[256];
    if (!std::fgets(buffer, sizeof(buffer), stdin))
        return {};
    std::string line(buffer);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.pop_back();
    return line;
}

int main(int argc, char **argv)
{
    ::alarm(60);  // watchdog: never outlive a test that forgot us
    if (argc < 3)
        return fail("usage: <mode> <fd> [args]");
    const std::string mode = argv[1];
    const int fd = std::atoi(argv[2]);

    IpmbMemoryRegion region = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::adopt(fd));
    if (region.isNull())
        return fail(region.errorString().toStdString());

    if (mode == "write" && argc == 4) {
        if (region.size() < 8192)
            return fail("region too small");
        const char *data = static_cast<const char *>(region.constData());
        say(std::string("saw ") + std::string(data, strnlen(data, 4096)));
        std::strcpy(static_cast<char *>(region.data()) + 4096, argv[3]);
        say("written");
        return 0;
    }
    if (mode == "hold") {
        say("refcount=" + std::to_string(region.refCount()));
        while (readLine() != "quit") {
            if (std::feof(stdin))
                return fail("stdin closed");
        }
        return 0;
    }
    if (mode == "increment" && argc == 4) {
        const long count = std::atol(argv[3]);
        quint64 *counter = static_cast<quint64 *>(region.data());
        say("ready");
        if (readLine() != "go")
            return fail("expected go");
        long interleaved = 0;  // how often another process got the lock in between
        quint64 last = 0;
        for (long i = 0; i < count; ++i) {
            if (!region.lock())
                return fail(region.errorString().toStdString());
            interleaved += i > 0 && *counter != last;
            last = ++*counter;
            if (!region.unlock())
                return fail(region.errorString().toStdString());
        }
        say("done interleaved=" + std::to_string(interleaved));
        return 0;
    }
    if (mode == "lock") {
        say("mapped");
        if (!region.lock())
            return fail(region.errorString().toStdString());
        say("locked");
        if (readLine() != "unlock")
            return fail("expected unlock");
        if (!region.unlock())
            return fail(region.errorString().toStdString());
        say("unlocked");
        return 0;
    }
    return fail("unknown mode " + mode);
}
