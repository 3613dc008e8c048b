// SPDX-License-Identifier: BSD-3-Clause
// One chat window on the bus: every window joins with the label ["chat", <name>] and sends each
// line to all of them with Selector.multicast("chat"). The sender's own window is among the
// receivers (its label matches too), so a line is shown when the bus delivers it, never when it
// is typed: each window shows every line exactly once, with the pid and label the bus reports.
// Who else is online comes from a PeerModel: live as windows open, close or crash.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import IpmbQt

Window {
    id: root

    // Set by main.cpp from the command line.
    required property string busIdentifier
    required property string userName
    required property int pid

    // The endpoint's state in words, or its error.
    readonly property string statusText: {
        if (endpoint.error !== Endpoint.NoError)
            return endpoint.errorString
        switch (endpoint.state) {
        case Endpoint.JoinedState:
            return qsTr("Joined %1 as %2%3").arg(endpoint.identifier).arg(root.userName)
                                           .arg(endpoint.controller ? qsTr(", routing the bus") : "")
        case Endpoint.JoiningState:
            return qsTr("Joining %1…").arg(endpoint.identifier)
        case Endpoint.ReconnectingState:
            return qsTr("Reconnecting: the window that routed the bus has gone")
        default:
            return qsTr("Not joined")
        }
    }

    // For main.cpp's automation hooks (tests/auto/chat); a chat needs neither.
    signal busJoined()
    signal lineAdded(int count, int senderPid, string senderLabel, string text)
    signal onlineChanged(int count, string names)

    // Sends the line to every window (this one included); false if the bus refused it.
    function say(text: string): bool {
        return text.length > 0 && endpoint.send(Selector.multicast("chat"), { text: text })
    }

    // The colour of a sender: hues spread by the golden ratio, dark enough to read on white
    // (yellow to cyan look lighter than the rest at the same lightness).
    function colourOf(pid: int): color {
        const hue = (pid * 0.618033988749895) % 1
        return Qt.hsla(hue, 0.75, hue > 0.1 && hue < 0.55 ? 0.3 : 0.42, 1)
    }

    // The names in a label, without the "chat" every window has; the whole label if that is all.
    function nameOf(names: list<string>): string {
        const own = names.filter(name => name !== "chat")
        return own.length > 0 ? own.join(", ") : names.join(", ")
    }

    width: 480
    height: 400
    visible: true
    title: qsTr("Chat: %1 (pid %2)").arg(root.userName).arg(root.pid)

    Endpoint {
        id: endpoint
        identifier: root.busIdentifier
        label: ["chat", root.userName]
        onJoined: {
            endpoint.clearError() // joined again after a failure: that failure is over
            root.busJoined()
        }
        onMessageReceived: (message) => {
            const text = message.payload?.text
            if (typeof text !== "string") {
                console.warn("not a chat line from pid", message.senderPid, message.payloadErrorString)
                return
            }
            lines.append({ senderPid: message.senderPid, senderName: root.nameOf(message.senderLabel.names),
                           text: text })
            list.positionViewAtEnd()
            root.lineAdded(lines.count, message.senderPid, message.senderLabel.names.join(","), text)
        }
    }

    ListModel { id: lines }

    // The other chat windows on the bus (the endpoint watches peers for it).
    PeerModel {
        id: online
        endpoint: endpoint
        filter: "chat"
        onCountChanged: {
            const names = []
            for (let row = 0; row < count; ++row)
                names.push(root.nameOf(data(index(row, 0), PeerModel.PeerRole).label.names))
            root.onlineChanged(count, names.join(","))
        }
    }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: 8
        spacing: 6

        ListView {
            id: list
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            spacing: 10
            model: lines
            delegate: Item {
                id: line
                required property int senderPid
                required property string senderName
                required property string text
                width: ListView.view.width
                height: lineText.y + lineText.height

                Rectangle { // the sender's colour down the side of the line
                    width: 3
                    height: parent.height
                    radius: 1
                    color: root.colourOf(line.senderPid)
                }
                Label {
                    id: sender
                    x: 10
                    text: qsTr("pid %1 · %2%3").arg(line.senderPid).arg(line.senderName)
                                                .arg(line.senderPid === root.pid ? qsTr(" (you)") : "")
                    color: root.colourOf(line.senderPid)
                    font.bold: true
                }
                Label {
                    id: lineText
                    x: 10
                    y: sender.height + 2
                    width: parent.width - x
                    text: line.text
                    wrapMode: Text.Wrap
                    textFormat: Text.PlainText
                }
            }

            Label {
                anchors.centerIn: parent
                visible: lines.count === 0
                text: qsTr("No lines yet. Start another chat and say hello.")
                color: "grey"
            }
        }

        RowLayout {
            Layout.fillWidth: true
            TextField {
                id: input
                Layout.fillWidth: true
                placeholderText: qsTr("Say something")
                onAccepted: send.clicked()
            }
            Button {
                id: send
                text: qsTr("Send")
                enabled: endpoint.state === Endpoint.JoinedState && input.text.length > 0
                onClicked: {
                    if (enabled && root.say(input.text))
                        input.clear()
                }
            }
        }

        RowLayout {
            Layout.fillWidth: true
            spacing: 6
            Label {
                text: online.count === 0 ? qsTr("Nobody else is here yet") : qsTr("Online:")
                color: "grey"
            }
            Repeater {
                model: online
                delegate: Label {
                    required property var peer
                    required property int pid
                    text: root.nameOf(peer.label.names)
                    color: root.colourOf(pid)
                    font.bold: true
                }
            }
            Item { Layout.fillWidth: true }
        }

        Label {
            Layout.fillWidth: true
            elide: Text.ElideRight
            color: endpoint.error === Endpoint.NoError ? "grey" : "firebrick"
            text: root.statusText
        }
    }
}
