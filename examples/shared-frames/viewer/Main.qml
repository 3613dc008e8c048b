// SPDX-License-Identifier: BSD-3-Clause
import QtQuick
import IpmbQt
import SharedFrames

Window {
    id: window
    width: 800
    height: 480
    visible: true
    color: "black"
    title: qsTr("Shared frames viewer")

    property string busIdentifier: "com.example.shared-frames"
    property var lastFrame

    Endpoint {
        id: endpoint
        identifier: window.busIdentifier
        label: ["viewer"]
    }

    FrameStats {
        id: stats
        window: window
    }

    // Frames go from the endpoint to the image in C++: a message handed to JavaScript would keep
    // its region busy until the next garbage collection, and the producer would run out.
    SharedImage {
        id: image
        anchors.fill: parent
        source: endpoint
        onMessageChanged: {
            window.lastFrame = image.payload.frame
            stats.frameArrived(image.payload.sentUs)
        }
    }

    Rectangle {
        anchors { left: parent.left; bottom: parent.bottom; margins: 12 }
        width: overlay.implicitWidth + 24
        height: overlay.implicitHeight + 12
        radius: 6
        color: "#b0000000"
        Text {
            id: overlay
            anchors.centerIn: parent
            color: "white"
            font.pixelSize: 18
            text: endpoint.state !== Endpoint.JoinedState ? qsTr("joining %1…").arg(endpoint.identifier)
                : image.errorString !== "" ? image.errorString
                : stats.framesShown === 0 ? qsTr("waiting for frames")
                : qsTr("%1 fps · latency %2 ms · frame %3")
                      .arg(stats.fps.toFixed(1)).arg(stats.latency.toFixed(2)).arg(window.lastFrame)
        }
    }
}
