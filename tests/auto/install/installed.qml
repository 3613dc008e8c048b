// SPDX-License-Identifier: BSD-3-Clause
// Loaded by qmlcheck against an installed IpmbQt: joins a bus, sends itself a message, checks it.
import QtQml
import IpmbQt

QtObject {
    id: root
    property bool done: false
    property int exitCode: 1

    property Endpoint endpoint: Endpoint {
        identifier: "ipmbqt.installcheck." + Qt.application.arguments[2]
        label: ["installed"]
        onJoined: {
            if (!root.endpoint.send(Selector.unicast("installed"), { hello: "from the prefix" }))
                root.finish(4)
        }
        onMessageReceived: (message) => root.finish(message.payload.hello === "from the prefix" ? 0 : 5)
        onErrorOccurred: root.finish(6)
    }

    function finish(code) {
        console.log("installed IpmbQt:", code === 0 ? "ok" : "failed " + code, root.endpoint.errorString)
        exitCode = code
        done = true
    }
}
