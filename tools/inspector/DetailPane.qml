// SPDX-License-Identifier: BSD-3-Clause
// The selected message in full: its fields, and its payload pretty-printed (indented JSON, text,
// or a hex dump), selectable for copying.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts

Frame {
    id: pane

    property var details: ({})
    property font monospace

    readonly property bool empty: details.sequence === undefined
    readonly property var fields: [
        [qsTr("Time"), "time"], [qsTr("Sender"), "sender"], [qsTr("Receiver"), "receiver"],
        [qsTr("Kind"), "kind"], [qsTr("Selector"), "selector"], [qsTr("Via"), "path"],
        [qsTr("Delivered to"), "deliveries"], [qsTr("Type"), "type"], [qsTr("Size"), "size"],
        [qsTr("Handles"), "attachments"]]

    padding: 8

    Label {
        anchors.centerIn: parent
        visible: pane.empty
        text: qsTr("Select a message to see its payload")
        color: palette.placeholderText
    }

    RowLayout {
        anchors.fill: parent
        visible: !pane.empty
        spacing: 12

        GridLayout {
            Layout.alignment: Qt.AlignTop
            Layout.preferredWidth: 380
            Layout.maximumWidth: 380
            columns: 2
            rowSpacing: 2
            columnSpacing: 8
            Repeater {
                model: pane.fields
                delegate: Label {
                    required property var modelData
                    required property int index
                    text: modelData[0]
                    color: palette.placeholderText
                    Layout.row: index
                    Layout.column: 0
                }
            }
            Repeater {
                model: pane.fields
                delegate: Label {
                    required property var modelData
                    required property int index
                    text: String(pane.details[modelData[1]] ?? "")
                    elide: Text.ElideRight
                    Layout.fillWidth: true
                    Layout.row: index
                    Layout.column: 1
                }
            }
        }

        ScrollView {
            Layout.fillWidth: true
            Layout.fillHeight: true
            background: Rectangle {
                color: palette.base
                border.color: palette.mid
            }
            TextArea {
                objectName: "payloadText"
                readOnly: true
                selectByMouse: true
                wrapMode: TextEdit.NoWrap
                textFormat: TextEdit.PlainText
                font: pane.monospace
                text: pane.empty ? "" : pane.details.payload
            }
        }
    }
}
