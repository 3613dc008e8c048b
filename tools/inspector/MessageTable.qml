// SPDX-License-Identifier: BSD-3-Clause
// The last messages, newest on top, one row each: a ListView of rows laid out in fixed columns
// (the payload column takes what is left), under a header row.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls

Frame {
    id: frame

    property alias model: list.model
    property alias currentIndex: list.currentIndex
    signal activated(int row)

    // Column widths; the payload takes the rest.
    readonly property var widths: [104, 120, 120, 96, 110, 76, 100, 60]
    readonly property var titles: [qsTr("Time"), qsTr("Sender"), qsTr("Receiver"), qsTr("Kind"),
                                   qsTr("Selector"), qsTr("Via"), qsTr("Type"), qsTr("Size"), qsTr("Payload")]

    padding: 0

    Rectangle {
        id: header
        width: parent.width
        height: 26
        color: palette.button
        Row {
            anchors.fill: parent
            anchors.leftMargin: 6
            Repeater {
                model: frame.titles
                Label {
                    required property int index
                    required property string modelData
                    width: index < frame.widths.length ? frame.widths[index] : 200
                    height: parent.height
                    verticalAlignment: Text.AlignVCenter
                    text: modelData
                    font.bold: true
                    elide: Text.ElideRight
                }
            }
        }
        Rectangle { anchors.bottom: parent.bottom; width: parent.width; height: 1; color: palette.mid }
    }

    ListView {
        id: list
        anchors.fill: parent
        anchors.topMargin: header.height
        clip: true
        currentIndex: -1
        boundsBehavior: Flickable.StopAtBounds
        highlightMoveDuration: 0
        keyNavigationEnabled: true
        // Up and down keys select too (rows that come in above only move the index: not shown anew).
        onCurrentIndexChanged: if (activeFocus && currentIndex >= 0) frame.activated(currentIndex)
        ScrollBar.vertical: ScrollBar { }

        delegate: Rectangle {
            id: row
            required property int index
            required property string time
            required property string sender
            required property color senderColour
            required property string receiver
            required property string kind
            required property string selector
            required property string path
            required property string type
            required property string size
            required property string payload

            width: ListView.view.width
            height: 24
            color: ListView.isCurrentItem ? palette.highlight : (index % 2 ? palette.alternateBase : palette.base)

            readonly property color ink: ListView.isCurrentItem ? palette.highlightedText : palette.text

            component Cell: Label {
                height: row.height
                verticalAlignment: Text.AlignVCenter
                elide: Text.ElideRight
                rightPadding: 6
                color: row.ink
                textFormat: Text.PlainText
            }

            Row {
                anchors.fill: parent
                anchors.leftMargin: 6
                Cell { width: frame.widths[0]; text: row.time; font.family: "monospace" }
                Item {
                    width: frame.widths[1]
                    height: row.height
                    Rectangle {
                        id: swatch
                        anchors.verticalCenter: parent.verticalCenter
                        width: 8; height: 8; radius: 4
                        color: row.senderColour
                    }
                    Cell {
                        x: swatch.width + 4
                        width: parent.width - x
                        text: row.sender
                        font.bold: true
                        color: row.ListView.isCurrentItem ? row.ink : row.senderColour
                    }
                }
                Cell { width: frame.widths[2]; text: row.receiver }
                Cell { width: frame.widths[3]; text: row.kind }
                Cell { width: frame.widths[4]; text: row.selector; font.family: "monospace" }
                Cell { width: frame.widths[5]; text: row.path }
                Cell { width: frame.widths[6]; text: row.type }
                Cell { width: frame.widths[7]; text: row.size; horizontalAlignment: Text.AlignRight }
                Cell {
                    width: Math.max(80, row.width - x - 6)
                    text: row.payload
                    font.family: "monospace"
                    leftPadding: 8
                }
            }

            MouseArea {
                anchors.fill: parent
                onClicked: {
                    list.forceActiveFocus()
                    list.currentIndex = row.index
                    frame.activated(row.index)
                }
            }
        }

        Label {
            anchors.centerIn: parent
            visible: list.count === 0
            text: qsTr("No messages yet")
            color: palette.placeholderText
        }
    }
}
