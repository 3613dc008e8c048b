// SPDX-License-Identifier: BSD-3-Clause
// The inspector's window: the peers and their rates (left, top), a chart of messages per second
// per sender over the last minute (left, bottom), the last messages newest first (right, top) and
// the selected one in full (right, bottom). Everything comes from `inspector` (BusInspector, C++),
// which updates its models from timers: nothing here runs per message.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import IpmbQt.Inspector

ApplicationWindow {
    id: root

    required property BusInspector inspector

    // The message shown in the detail pane (MessageListModel.details()); kept when its row goes.
    property var selected: ({})

    // A count with thousands separators (QML's %L1 turns large numbers into 1.2e+06).
    function count(n: real): string {
        return n.toLocaleString(Qt.locale(), 'f', 0)
    }

    // For main.cpp's automation hooks, as a click on a row.
    function selectRow(row: int): var {
        table.currentIndex = row
        root.selected = root.inspector.messages.details(row)
        return root.selected
    }

    width: 1280
    height: 800
    minimumWidth: 800
    minimumHeight: 500
    visible: true
    title: qsTr("IpmbQt Inspector — %1").arg(inspector.bus)

    readonly property font monospace: Qt.font({ family: "monospace", pointSize: root.font.pointSize })

    header: ToolBar {
        RowLayout {
            anchors.fill: parent
            anchors.leftMargin: 8
            anchors.rightMargin: 8
            spacing: 8

            Button {
                id: pauseButton
                objectName: "pauseButton"
                text: root.inspector.paused ? qsTr("Resume") : qsTr("Pause")
                checkable: true
                checked: root.inspector.paused
                onToggled: root.inspector.paused = checked
                ToolTip.visible: hovered
                ToolTip.text: qsTr("Freeze the table and the chart; messages that arrive meanwhile are counted")
            }
            ToolSeparator { }
            Label { text: qsTr("Filter:") }
            TextField {
                id: filterField
                objectName: "filterField"
                Layout.preferredWidth: 320
                placeholderText: qsTr("label op, e.g. display || worker")
                text: root.inspector.filterText
                font: root.monospace
                selectByMouse: true
                onTextEdited: root.inspector.filterText = text
                color: root.inspector.filterError.length > 0 ? "#b00020" : palette.text
            }
            Label {
                objectName: "filterError"
                Layout.fillWidth: true
                elide: Text.ElideRight
                color: "#b00020"
                text: root.inspector.filterError
            }
            Label {
                text: qsTr("%1 of the last %2 messages shown")
                        .arg(root.inspector.messages.count).arg(root.inspector.messages.limit)
                color: palette.placeholderText
            }
        }
    }

    footer: Frame {
        padding: 4
        leftPadding: 8
        Label {
            objectName: "statusLine"
            width: parent.width
            elide: Text.ElideRight
            text: {
                const parts = [qsTr("Bus %1: %2").arg(root.inspector.bus).arg(root.inspector.stateText),
                               root.inspector.peers.count === 1 ? qsTr("1 peer")
                                                                : qsTr("%1 peers").arg(root.inspector.peers.count),
                               qsTr("%1 messages seen").arg(root.count(root.inspector.copiesSeen)),
                               root.inspector.copiesDropped > 0
                                   ? qsTr("%1 copies dropped by the controller: this window fell behind")
                                         .arg(root.count(root.inspector.copiesDropped))
                                   : qsTr("no copies dropped")]
                if (root.inspector.paused)
                    parts.push(qsTr("paused: %1 arrived since").arg(root.count(root.inspector.copiesWhilePaused)))
                return parts.join("   ·   ")
            }
        }
    }

    SplitView {
        anchors.fill: parent
        orientation: Qt.Horizontal

        // Left: the peers, and the chart of their rates.
        SplitView {
            SplitView.preferredWidth: 360
            SplitView.minimumWidth: 280
            orientation: Qt.Vertical

            Pane {
                SplitView.preferredHeight: 240
                SplitView.minimumHeight: 120
                padding: 8

                ColumnLayout {
                    anchors.fill: parent
                    spacing: 4
                    Label {
                        text: qsTr("Peers (%1)").arg(root.inspector.peers.count)
                        font.bold: true
                    }
                    ListView {
                        id: peerList
                        objectName: "peerList"
                        Layout.fillWidth: true
                        Layout.fillHeight: true
                        clip: true
                        model: root.inspector.peers
                        ScrollBar.vertical: ScrollBar { }
                        delegate: ItemDelegate {
                            id: peer
                            required property int index
                            required property string label
                            required property var endpointId
                            required property var pid
                            required property bool controller
                            required property color colour
                            required property real rate
                            required property real sent
                            width: ListView.view.width
                            padding: 4
                            // The colour the chart and the table use for it; its label and
                            // rate; then its id, pid and how many it sent.
                            contentItem: RowLayout {
                                spacing: 8
                                Rectangle {
                                    Layout.preferredWidth: 10
                                    Layout.fillHeight: true
                                    radius: 2
                                    color: peer.colour
                                }
                                ColumnLayout {
                                    Layout.fillWidth: true
                                    spacing: 0
                                    RowLayout {
                                        spacing: 6
                                        Label {
                                            text: peer.label.length > 0 ? peer.label : qsTr("(no label)")
                                            font.bold: true
                                            elide: Text.ElideRight
                                            Layout.minimumWidth: 40
                                        }
                                        Label {
                                            visible: peer.controller
                                            text: qsTr("controller")
                                            font.pointSize: root.font.pointSize * 0.85
                                            color: "white"
                                            leftPadding: 4
                                            rightPadding: 4
                                            background: Rectangle { color: "#4a6b8a"; radius: 3 }
                                        }
                                        Item { Layout.fillWidth: true }
                                        Label {
                                            text: qsTr("%1 msg/s").arg(peer.rate.toLocaleString(Qt.locale(), 'f', peer.rate < 10 ? 1 : 0))
                                            font: root.monospace
                                        }
                                    }
                                    Label {
                                        Layout.fillWidth: true
                                        text: qsTr("id %1 · pid %2 · %3 sent").arg(String(peer.endpointId)).arg(String(peer.pid)).arg(root.count(peer.sent))
                                        color: palette.placeholderText
                                        font.pointSize: root.font.pointSize * 0.9
                                        elide: Text.ElideRight
                                    }
                                }
                            }
                        }
                        Label {
                            anchors.centerIn: parent
                            visible: peerList.count === 0
                            text: root.inspector.joined ? qsTr("Nobody on the bus") : root.inspector.stateText
                            color: palette.placeholderText
                        }
                    }
                }
            }

            Pane {
                SplitView.fillHeight: true
                SplitView.minimumHeight: 160
                padding: 8

                ColumnLayout {
                    anchors.fill: parent
                    spacing: 4
                    Label {
                        text: qsTr("Messages per second, last %1 s").arg(root.inspector.chartSeconds)
                        font.bold: true
                    }
                    RateChart {
                        id: chart
                        objectName: "rateChart"
                        Layout.fillWidth: true
                        Layout.fillHeight: true
                        inspector: root.inspector
                    }
                }
            }
        }

        // Right: the last messages, and the selected one.
        SplitView {
            SplitView.fillWidth: true
            orientation: Qt.Vertical

            MessageTable {
                id: table
                objectName: "messageTable"
                SplitView.fillHeight: true
                SplitView.minimumHeight: 150
                model: root.inspector.messages
                onActivated: (row) => root.selected = root.inspector.messages.details(row)
            }

            DetailPane {
                objectName: "detailPane"
                SplitView.preferredHeight: 260
                SplitView.minimumHeight: 100
                details: root.selected
                monospace: root.monospace
            }
        }
    }
}
