// SPDX-License-Identifier: BSD-3-Clause
#ifndef FRAMESTATS_H
#define FRAMESTATS_H

#include <QtCore/qobject.h>
#include <QtCore/qpointer.h>
#include <QtQml/qqmlregistration.h>
#include <QtQuick/qquickwindow.h>

#include <deque>
#include <vector>

// Frame rate and latency of the frames a window shows: a frame counts when the window that shows
// it has swapped its buffers, and its latency is the time from the producer's send to that swap.
class FrameStats : public QObject
{
    Q_OBJECT
    QML_ELEMENT
    Q_PROPERTY(QQuickWindow *window READ window WRITE setWindow NOTIFY windowChanged)
    Q_PROPERTY(double fps READ fps NOTIFY updated)
    Q_PROPERTY(double latency READ latency NOTIFY updated)
    Q_PROPERTY(int framesShown READ framesShown NOTIFY updated)

public:
    using QObject::QObject;

    QQuickWindow *window() const { return m_window; }
    void setWindow(QQuickWindow *window);
    double fps() const { return m_fps; }
    double latency() const { return m_latency; }
    int framesShown() const { return m_framesShown; }

    // Call when a frame was handed to the scene; sentUs is the producer's monotonic clock.
    Q_INVOKABLE void frameArrived(qint64 sentUs);

    // Latencies (ms) of every frame shown since the last call, for the summary.
    std::vector<double> takeLatencies() { return std::exchange(m_latencies, {}); }
    // The same from the producer's send to frameArrived(): the bus's share of the latency.
    std::vector<double> takeDeliveryLatencies() { return std::exchange(m_deliveryLatencies, {}); }

Q_SIGNALS:
    void windowChanged();
    void updated();

private:
    void frameSwapped();

    QPointer<QQuickWindow> m_window;
    qint64 m_pendingSentUs = -1;
    int m_framesShown = 0; // 414 days at 60 fps
    std::deque<qint64> m_recentSwaps; // of the last second, in µs: the frame rate is their rate
    double m_fps = 0;
    double m_latency = 0;
    std::vector<double> m_latencies;
    std::vector<double> m_deliveryLatencies;
};

#endif // FRAMESTATS_H
