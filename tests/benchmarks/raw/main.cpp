// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_bench_raw: the naive kernel baseline. AF_UNIX SOCK_SEQPACKET in the abstract namespace,
// one blocking send()/recv() per message, no library and no event loop.
//   recv  --addr A --size S --warmup W                      listen on A, count messages
//   send  --addr A --size S --warmup W --duration MS        connect to A, send for MS after "go"
//   relay --listen A --to B --size S                        forward A -> B and B -> A, one thread each
//   pong  --addr A                                          listen on A, echo every datagram
//   ping  --addr A --rounds N --warmup W                    connect to A, N round trips of 16 bytes
#include "../benchcommon.h"

#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>

using namespace Bench;

static constexpr int SocketBuffer = 4 * 1024 * 1024; // the kernel caps it at net.core.wmem_max

static void growBuffers(int fd)
{
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &SocketBuffer, sizeof(SocketBuffer));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &SocketBuffer, sizeof(SocketBuffer));
}

static int listenOn(const std::string &name)
{
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un address;
    const socklen_t length = abstractAddress(name, &address);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&address), length) != 0 || ::listen(fd, 16) != 0)
        fail("cannot listen on %s: %s", name.c_str(), std::strerror(errno));
    return fd;
}

static int acceptOne(int listener)
{
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
        fail("accept: %s", std::strerror(errno));
    growBuffers(fd);
    ::close(listener);
    return fd;
}

static int connectTo(const std::string &name)
{
    sockaddr_un address;
    const socklen_t length = abstractAddress(name, &address);
    const int64_t deadline = nowNs() + 5000000000LL;
    for (;;) {
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        growBuffers(fd);
        if (::connect(fd, reinterpret_cast<sockaddr *>(&address), length) == 0)
            return fd;
        const int error = errno;
        ::close(fd);
        if (nowNs() > deadline)
            fail("cannot connect to %s: %s", name.c_str(), std::strerror(error));
        ::usleep(1000);
    }
}

static void sendAll(int fd, const char *data, size_t size)
{
    for (;;) {
        const ssize_t w = ::send(fd, data, size, MSG_NOSIGNAL);
        if (w == ssize_t(size))
            return;
        if (w < 0 && errno == EINTR)
            continue;
        fail("send of a %zu-byte datagram: %s", size, w < 0 ? std::strerror(errno) : "short write");
    }
}

static ssize_t receiveOne(int fd, std::vector<char> &buffer)
{
    for (;;) {
        const ssize_t r = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static int receiver(const Args &args)
{
    const int listener = listenOn(args.text("addr"));
    say("ready");
    const int fd = acceptOne(listener);
    std::vector<char> buffer(size_t(args.number("size")) + 64);
    ReceiveCounter counter(args.number("warmup"));
    for (;;) {
        const ssize_t r = receiveOne(fd, buffer);
        if (r <= 0)
            fail("the sender went away: %s", r < 0 ? std::strerror(errno) : "end of stream");
        if (counter.take(buffer.data(), size_t(r)))
            return 0;
    }
}

static int sender(const Args &args)
{
    const int fd = connectTo(args.text("addr"));
    const size_t size = size_t(args.number("size"));
    const int64_t duration = args.number("duration") * 1000000;
    std::vector<char> payload(size, 'x');
    say("ready");
    expectCommand("warm");
    payload[0] = Warm;
    for (int64_t i = args.number("warmup"); i > 0; --i)
        sendAll(fd, payload.data(), size);
    expectCommand("go");
    payload[0] = Data;
    int64_t sent = 0;
    const int64_t t0 = nowNs();
    const int batch = size < 4096 ? 32 : 1;
    do {
        for (int i = 0; i < batch; ++i)
            sendAll(fd, payload.data(), size);
        sent += batch;
    } while (nowNs() - t0 < duration);
    payload[0] = End;
    sendAll(fd, payload.data(), size);
    say("sent n=%lld t0=%lld", (long long)sent, (long long)t0);
    std::string line;
    while (readCommand(&line)) { }
    return 0;
}

// Copies datagrams from one socket to another until the source closes.
static void forward(int from, int to, size_t bufferSize)
{
    std::vector<char> buffer(bufferSize);
    for (;;) {
        const ssize_t r = receiveOne(from, buffer);
        if (r <= 0)
            break;
        sendAll(to, buffer.data(), size_t(r));
    }
    ::shutdown(to, SHUT_WR);
}

static int relay(const Args &args)
{
    const int downstream = connectTo(args.text("to"));
    const int listener = listenOn(args.text("listen"));
    say("ready");
    const int upstream = acceptOne(listener);
    const size_t bufferSize = size_t(args.number("size", "64")) + 64;
    std::thread back([&] { forward(downstream, upstream, bufferSize); });
    forward(upstream, downstream, bufferSize);
    back.join();
    return 0;
}

static int pong(const Args &args)
{
    const int listener = listenOn(args.text("addr"));
    say("ready");
    const int fd = acceptOne(listener);
    forward(fd, fd, 64 * 1024);
    return 0;
}

static int ping(const Args &args)
{
    const int fd = connectTo(args.text("addr"));
    const int64_t rounds = args.number("rounds");
    const int64_t warmups = args.number("warmup");
    char message[16];
    std::memset(message, 'p', sizeof(message));
    std::vector<char> buffer(64 * 1024);
    std::vector<int64_t> samples;
    samples.reserve(size_t(rounds));
    say("ready");
    expectCommand("go");
    for (int64_t i = -warmups; i < rounds; ++i) {
        const int64_t start = nowNs();
        sendAll(fd, message, sizeof(message));
        if (receiveOne(fd, buffer) != ssize_t(sizeof(message)))
            fail("bad or missing answer");
        if (i >= 0)
            samples.push_back(nowNs() - start);
    }
    reportLatency(samples);
    ::shutdown(fd, SHUT_WR);
    return 0;
}

int main(int argc, char **argv)
{
    const Args args(argc, argv);
    guardProcess(unsigned(args.number("watchdog", "300")));
    if (args.role() == "recv")
        return receiver(args);
    if (args.role() == "send")
        return sender(args);
    if (args.role() == "relay")
        return relay(args);
    if (args.role() == "pong")
        return pong(args);
    if (args.role() == "ping")
        return ping(args);
    fail("unknown role '%s'", args.role().c_str());
}
