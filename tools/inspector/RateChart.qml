// SPDX-License-Identifier: BSD-3-Clause
// Messages per second of each busy sender over the last minute: one line per sender in its
// colour, newest on the right, and a legend with each sender's label and last second's rate.
// Repainted once a second (BusInspector.chartChanged), never per message.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import IpmbQt.Inspector

ColumnLayout {
    id: chart

    required property BusInspector inspector
    property var series: []
    property bool counted: false   // a second has passed: the series say something

    // A round top for the y axis: 1, 2 or 5 times a power of ten, at least 5 (whole messages).
    function niceCeiling(value: real): real {
        if (value <= 5)
            return 5
        const power = Math.pow(10, Math.floor(Math.log(value) / Math.LN10))
        for (const step of [1, 2, 5, 10]) {
            if (value <= step * power)
                return step * power
        }
        return 10 * power
    }
    function shortNumber(value: real): string {
        if (value >= 1e6)
            return (value / 1e6).toLocaleString(Qt.locale(), 'f', value % 1e6 ? 1 : 0) + "M"
        if (value >= 1e3)
            return (value / 1e3).toLocaleString(Qt.locale(), 'f', value % 1e3 ? 1 : 0) + "k"
        return value.toString()
    }

    spacing: 6

    Connections {
        target: chart.inspector
        function onChartChanged() {
            chart.series = chart.inspector.chartSeries()
            chart.counted = true
            canvas.requestPaint()
        }
    }

    Canvas {
        id: canvas
        Layout.fillWidth: true
        Layout.fillHeight: true
        Layout.minimumHeight: 80

        readonly property int leftAxis: 48
        readonly property int bottomAxis: 18

        onWidthChanged: requestPaint()
        onHeightChanged: requestPaint()
        onPaint: {
            const ctx = getContext("2d")
            ctx.reset()
            const w = width, h = height
            const plotW = w - leftAxis - 6, plotH = h - bottomAxis - 6
            if (plotW < 10 || plotH < 10)
                return
            let peak = 0
            for (const line of chart.series)
                for (const v of line.values)
                    peak = Math.max(peak, v)
            const top = chart.niceCeiling(peak)
            // Grid lines at round values: 1 → 0.2 steps, 2 → 0.5, 5 → 1 (times a power of ten).
            const mantissa = Math.round(top / Math.pow(10, Math.floor(Math.log(top) / Math.LN10 + 1e-9)))
            const divisions = mantissa === 2 ? 4 : 5
            const seconds = chart.inspector.chartSeconds

            ctx.fillStyle = palette.base
            ctx.fillRect(leftAxis, 6, plotW, plotH)
            ctx.font = "10px sans-serif"
            ctx.lineWidth = 1
            // Grid: round values on the y axis, every 10 s on the x axis.
            ctx.strokeStyle = Qt.rgba(0, 0, 0, 0.12)
            ctx.fillStyle = palette.placeholderText
            ctx.textAlign = "right"
            ctx.textBaseline = "middle"
            for (let i = 0; i <= divisions; ++i) {
                const y = 6 + plotH - plotH * i / divisions
                ctx.beginPath(); ctx.moveTo(leftAxis, y + 0.5); ctx.lineTo(leftAxis + plotW, y + 0.5); ctx.stroke()
                ctx.fillText(chart.shortNumber(top * i / divisions), leftAxis - 6, y)
            }
            ctx.textBaseline = "top"
            for (let s = 0; s <= seconds; s += 10) {
                const x = leftAxis + plotW * s / seconds
                ctx.beginPath(); ctx.moveTo(x + 0.5, 6); ctx.lineTo(x + 0.5, 6 + plotH); ctx.stroke()
                ctx.textAlign = s === seconds ? "right" : "center"
                ctx.fillText(s === seconds ? qsTr("now") : qsTr("-%1 s").arg(seconds - s), x, 6 + plotH + 4)
            }
            ctx.strokeStyle = palette.mid
            ctx.strokeRect(leftAxis + 0.5, 6.5, plotW, plotH)

            ctx.lineWidth = 2
            ctx.lineJoin = "round"
            for (const line of chart.series) {
                const values = line.values
                ctx.strokeStyle = line.colour
                ctx.beginPath()
                for (let i = 0; i < values.length; ++i) {
                    const x = leftAxis + plotW * (i + 1) / values.length
                    const y = 6 + plotH - plotH * values[i] / top
                    if (i === 0)
                        ctx.moveTo(x, y)
                    else
                        ctx.lineTo(x, y)
                }
                ctx.stroke()
            }
        }

        Label {
            anchors.centerIn: parent
            visible: chart.series.length === 0
            text: chart.counted ? qsTr("No traffic in the last minute") : qsTr("Counting…")
            color: palette.placeholderText
        }
    }

    // The legend: a swatch, the label and the last second's rate of each line.
    Flow {
        Layout.fillWidth: true
        spacing: 12
        Repeater {
            model: chart.series
            delegate: Row {
                id: entry
                required property var modelData
                spacing: 4
                Rectangle {
                    anchors.verticalCenter: parent.verticalCenter
                    width: 14
                    height: 3
                    color: entry.modelData.colour
                }
                Label {
                    text: qsTr("%1 %2/s%3").arg(entry.modelData.label)
                            .arg(entry.modelData.rate.toLocaleString(Qt.locale(), 'f', entry.modelData.rate < 10 ? 1 : 0))
                            .arg(entry.modelData.peer ? "" : qsTr(" (left)"))
                    font.pointSize: Qt.application.font.pointSize * 0.9
                }
            }
        }
    }
}
