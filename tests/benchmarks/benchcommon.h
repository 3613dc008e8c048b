// SPDX-License-Identifier: BSD-3-Clause
// Shared by the benchmark driver and its helper processes. Plain C++ and POSIX on purpose: the raw
// socket helper links nothing else, so that its figures are the kernel's and not a library's.
//
// Helpers talk to the driver in lines. Helper -> driver (stdout):
//   ready [controller=0|1]         set up, connected, waiting
//   warmed                         receiver: got every warm-up message
//   sent n=<n> t0=<ns>             sender: sent n measured messages, the first at monotonic time t0
//   done n=<n> t1=<ns>             receiver: got n measured messages, the end marker at time t1
//   lat n=<n> p50=<ns> p99=<ns> mean=<ns>    pinger: round trips
//   error <text>                   anything fatal; the helper exits with 1 after it
// Driver -> helper (stdin): "warm" (send the warm-up), "go" (send the measured messages, or start the
// round trips); end of input means "exit now".
//
// Every payload starts with a kind byte: Warm, Data or End. Throughput is
//   n / (t1 - t0)
// with t0 taken by the sender just before its first measured send and t1 by the receiver when the
// end marker (sent after the last measured message, in order) arrives: CLOCK_MONOTONIC is one clock
// for every process of the machine.

#ifndef IPMBQT_BENCHCOMMON_H
#define IPMBQT_BENCHCOMMON_H

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

namespace Bench {

enum Kind : char { Warm = 'W', Data = 'D', End = 'E' };

inline int64_t nowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One line to the driver, unbuffered as a whole.
inline void say(const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(line, sizeof(line) - 1, format, args);
    va_end(args);
    n = std::clamp(n, 0, int(sizeof(line)) - 2);
    line[n++] = '\n';
    for (int done = 0; done < n;) {
        const ssize_t w = ::write(STDOUT_FILENO, line + done, size_t(n - done));
        if (w <= 0 && errno != EINTR)
            return;
        done += int(std::max<ssize_t>(w, 0));
    }
}

[[noreturn]] inline void fail(const char *format, ...)
{
    char text[900];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    say("error %s", text);
    ::_exit(1);
}

// An AF_UNIX address in the abstract namespace (no file), for the helpers that use plain sockets.
inline socklen_t abstractAddress(const std::string &name, sockaddr_un *address)
{
    std::memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    if (name.size() + 1 > sizeof(address->sun_path))
        fail("address too long");
    std::memcpy(address->sun_path + 1, name.data(), name.size());
    return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

// Blocking read of one command line from stdin; false at end of input.
inline bool readCommand(std::string *line)
{
    line->clear();
    for (;;) {
        char c;
        const ssize_t r = ::read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        if (c == '\n')
            return true;
        line->push_back(c);
    }
}

inline void expectCommand(const char *command)
{
    std::string line;
    if (!readCommand(&line))
        ::_exit(0); // the driver went away or gave up on us
    if (line != command)
        fail("expected '%s' on stdin, got '%s'", command, line.c_str());
}

// Helpers die with the driver, and never outlive a hung case by much.
inline void guardProcess(unsigned watchdogSeconds)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1)
        ::_exit(1);
    ::alarm(watchdogSeconds);
}

// "--key value" pairs after the role: role = argv[1].
class Args
{
public:
    Args(int argc, char **argv)
    {
        if (argc > 1)
            m_role = argv[1];
        for (int i = 2; i + 1 < argc; i += 2) {
            if (std::strncmp(argv[i], "--", 2) != 0)
                fail("bad argument '%s'", argv[i]);
            m_values[argv[i] + 2] = argv[i + 1];
        }
    }
    const std::string &role() const { return m_role; }
    std::string text(const char *key, const char *fallback = nullptr) const
    {
        const auto it = m_values.find(key);
        if (it != m_values.end())
            return it->second;
        if (!fallback)
            fail("missing --%s", key);
        return fallback;
    }
    int64_t number(const char *key, const char *fallback = nullptr) const
    {
        return std::strtoll(text(key, fallback).c_str(), nullptr, 10);
    }

private:
    std::string m_role;
    std::map<std::string, std::string> m_values;
};

// Round-trip times in ns -> "lat" line.
inline void reportLatency(std::vector<int64_t> &samples)
{
    if (samples.empty())
        fail("no round trips");
    std::sort(samples.begin(), samples.end());
    long double sum = 0;
    for (int64_t s : samples)
        sum += s;
    const size_t n = samples.size();
    say("lat n=%zu p50=%lld p99=%lld mean=%lld", n, (long long)samples[n / 2],
        (long long)samples[std::min(n - 1, (n * 99) / 100)], (long long)(sum / n));
}

// Counts what a throughput receiver gets and reports "warmed" and "done".
class ReceiveCounter
{
public:
    explicit ReceiveCounter(int64_t warmups) : m_warmups(warmups)
    {
        if (m_warmups == 0)
            say("warmed");
    }
    // Returns true when the end marker arrived.
    bool take(const char *payload, size_t size)
    {
        const char kind = size ? payload[0] : 0;
        if (kind == Data) {
            ++m_data;
        } else if (kind == Warm) {
            if (++m_warm == m_warmups)
                say("warmed");
        } else if (kind == End) {
            say("done n=%lld t1=%lld", (long long)m_data, (long long)nowNs());
            return true;
        } else {
            fail("unexpected payload of %zu bytes, kind %d", size, int(kind));
        }
        return false;
    }

private:
    int64_t m_warmups;
    int64_t m_warm = 0;
    int64_t m_data = 0;
};

} // namespace Bench

#endif // IPMBQT_BENCHCOMMON_H
