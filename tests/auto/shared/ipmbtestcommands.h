// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTCOMMANDS_H
#define IPMBTESTCOMMANDS_H

// The command loop of the helper processes: lines on stdin, each handed to `command` in the
// event loop's thread; "quit" when stdin closes (the test ended, or died).

#include <QtCore/qbytearray.h>
#include <QtCore/qobject.h>
#include <QtCore/qsocketnotifier.h>

#include <functional>
#include <memory>

#include <unistd.h>

namespace IpmbTest {

inline void readCommands(QObject *parent, std::function<void(const QByteArray &)> command)
{
    auto *input = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, parent);
    auto pending = std::make_shared<QByteArray>();
    QObject::connect(input, &QSocketNotifier::activated, parent, [input, pending, command] {
        char buffer[4096];
        const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n <= 0) {
            input->setEnabled(false);
            return command("quit");
        }
        pending->append(buffer, n);
        for (qsizetype end; (end = pending->indexOf('\n')) >= 0;) {
            const QByteArray line = pending->left(end);
            pending->remove(0, end + 1);
            command(line);
        }
    });
}

} // namespace IpmbTest

#endif // IPMBTESTCOMMANDS_H
