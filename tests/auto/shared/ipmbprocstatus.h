// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPROCSTATUS_H
#define IPMBPROCSTATUS_H

// QtCore only: used by the tests and by the benchmark driver.

#include <QtCore/qbytearray.h>
#include <QtCore/qfile.h>
#include <QtCore/qstring.h>

namespace IpmbTest {

// A "VmRSS:   1234 kB" style field of /proc/<pid>/status, in KiB; -1 if there is none.
inline qint64 procStatusKiB(qint64 pid, const QByteArray &field)
{
    QFile file(QStringLiteral("/proc/%1/status").arg(pid));
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    for (const QByteArray &line : file.readAll().split('\n')) {
        if (line.startsWith(field + ':'))
            return line.mid(field.size() + 1).trimmed().split(' ').value(0).toLongLong();
    }
    return -1;
}

} // namespace IpmbTest

#endif // IPMBPROCSTATUS_H
