// SPDX-License-Identifier: BSD-3-Clause
#include "framestats.h"

#include <chrono>

namespace {

qint64 monotonicMicroseconds()
{
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

void FrameStats::setWindow(QQuickWindow *window)
{
    if (m_window == window)
        return;
    if (m_window)
        disconnect(m_window, nullptr, this, nullptr);
    m_window = window;
    // Direct: with the threaded render loop the swap happens on the render thread, and the time
    // of the swap is what counts.
    if (m_window)
        connect(m_window, &QQuickWindow::frameSwapped, this, &FrameStats::frameSwapped, Qt::DirectConnection);
    Q_EMIT windowChanged();
}

void FrameStats::frameArrived(qint64 sentUs)
{
    // A frame replaced before it was shown is not counted: only what the user saw is.
    m_pendingSentUs = sentUs;
    m_deliveryLatencies.push_back((monotonicMicroseconds() - sentUs) / 1000.0);
}

void FrameStats::frameSwapped()
{
    const qint64 now = monotonicMicroseconds();
    QMetaObject::invokeMethod(this, [this, now] {
        if (m_pendingSentUs < 0)
            return;
        m_latency = (now - m_pendingSentUs) / 1000.0;
        m_pendingSentUs = -1;
        m_latencies.push_back(m_latency);
        ++m_framesShown;
        m_recentSwaps.push_back(now);
        while (now - m_recentSwaps.front() > 1000000)
            m_recentSwaps.pop_front();
        if (m_recentSwaps.size() > 1)
            m_fps = (m_recentSwaps.size() - 1) * 1e6 / double(now - m_recentSwaps.front());
        Q_EMIT updated();
    });
}
