// Drives the real electron-updater (generic provider) from Node, without Electron, the way
// electron-builder's own updater tests do: an AppAdapter for the app and a Node http executor
// instead of Electron's net module. Prints one JSON object (the outcome) on stdout.
//
//   node run.js '{"workDir": "...", "appVersion": "1.0.0", "action": "check" | "download",
//                 "differential": false, "headers": {...}}'
"use strict"

const fs = require("fs")
const http = require("http")
const path = require("path")
const { HttpExecutor, configureRequestOptions, configureRequestUrl } = require("builder-util-runtime")
const { NsisUpdater } = require("electron-updater")

class TestAppAdapter {
  constructor(version, workDir) {
    this._version = version
    this.workDir = workDir
  }
  get version() { return this._version }
  get name() { return "e2e-updater-app" }
  get isPackaged() { return true }
  get appUpdateConfigPath() { return path.join(this.workDir, "app-update.yml") }
  get userDataPath() { return path.join(this.workDir, "userData") }
  get baseCachePath() { return path.join(this.workDir, "cache") }
  whenReady() { return Promise.resolve() }
  relaunch() {}
  quit() {}
  onQuit() {}
}

// Node's http instead of Electron's net; records every request and the body bytes received.
class RecordingHttpExecutor extends HttpExecutor {
  constructor() {
    super()
    this.requests = []
  }
  // Same as electron-updater's ElectronHttpExecutor.download, over Node's http.
  async download(url, destination, options) {
    return await options.cancellationToken.createPromise((resolve, reject, onCancel) => {
      const requestOptions = { headers: options.headers || undefined }
      configureRequestUrl(url, requestOptions)
      configureRequestOptions(requestOptions)
      this.doDownload(
        requestOptions,
        {
          destination,
          options,
          onCancel,
          callback: error => (error == null ? resolve(destination) : reject(error)),
          responseHandler: null,
        },
        0
      )
    })
  }
  createRequest(options, callback) {
    const record = { path: options.path, range: null, status: null, contentType: null, bytes: 0 }
    this.requests.push(record)
    const request = http.request(options, response => {
      record.status = response.statusCode
      record.contentType = response.headers["content-type"] || null
      const emit = response.emit
      response.emit = function (event, chunk, ...rest) {
        if (event === "data") record.bytes += chunk.length
        return emit.call(this, event, chunk, ...rest)
      }
      callback(response)
    })
    const setHeader = request.setHeader.bind(request)
    request.setHeader = (name, value) => {
      if (name.toLowerCase() === "range") record.range = value
      return setHeader(name, value)
    }
    if (options.headers && options.headers.Range) record.range = options.headers.Range
    if (options.headers && options.headers.range) record.range = options.headers.range
    return request
  }
}

async function main() {
  const config = JSON.parse(process.argv[2])
  const executor = new RecordingHttpExecutor()
  const logs = []
  const updater = new NsisUpdater(null, new TestAppAdapter(config.appVersion, config.workDir))
  updater.httpExecutor = executor
  // Test mode as in electron-builder's tests: Windows channel (latest.yml), and a failing
  // differential download throws instead of silently falling back to a full download.
  updater._testOnlyOptions = { platform: "win32", isUseDifferentialDownload: !!config.differential }
  updater.logger = {
    info: m => logs.push(`info: ${m}`),
    warn: m => logs.push(`warn: ${m}`),
    error: m => logs.push(`error: ${m}`),
    debug: m => logs.push(`debug: ${m}`),
  }
  updater.autoDownload = false
  updater.autoInstallOnAppQuit = false
  updater.disableWebInstaller = true
  updater.disableDifferentialDownload = !config.differential
  updater.requestHeaders = config.headers || null

  const result = await updater.checkForUpdates()
  const outcome = {
    isUpdateAvailable: result ? result.isUpdateAvailable : false,
    version: result ? result.updateInfo.version : null,
    files: [],
    requests: executor.requests,
    logs,
  }
  if (config.action === "download" && outcome.isUpdateAvailable) {
    outcome.files = await updater.downloadUpdate()
  }
  process.stdout.write(JSON.stringify(outcome))
}

main().catch(error => {
  process.stdout.write(JSON.stringify({ error: String(error && error.stack || error) }))
  process.exitCode = 1
})
