// SPDX-License-Identifier: BSD-3-Clause
// Qt side of the helper protocol (see benchcommon.h): driver commands read in an event loop.
#ifndef IPMBQT_BENCHQT_H
#define IPMBQT_BENCHQT_H

#include "benchcommon.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qobject.h>
#include <QtCore/qsocketnotifier.h>

#include <functional>
#include <memory>

namespace Bench {

// Calls onCommand for every line the driver writes, and with an empty line at end of input.
inline void watchCommands(QObject *context, std::function<void(const QByteArray &)> onCommand)
{
    auto *notifier = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, context);
    auto pending = std::make_shared<QByteArray>();
    QObject::connect(notifier, &QSocketNotifier::activated, context, [notifier, pending, onCommand] {
        char chunk[256];
        const ssize_t r = ::read(STDIN_FILENO, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            return;
        if (r <= 0) {
            notifier->setEnabled(false);
            onCommand(QByteArray());
            return;
        }
        pending->append(chunk, qsizetype(r));
        qsizetype newline;
        while ((newline = pending->indexOf('\n')) >= 0) {
            const QByteArray line = pending->left(newline);
            pending->remove(0, newline + 1);
            if (!line.isEmpty())
                onCommand(line);
        }
    });
}

// A payload of the given size whose first byte is the kind.
inline QByteArray makePayload(qsizetype size, Kind kind)
{
    QByteArray bytes(qMax<qsizetype>(size, 1), 'x');
    bytes[0] = kind;
    return bytes;
}

} // namespace Bench

#endif // IPMBQT_BENCHQT_H
