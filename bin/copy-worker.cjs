// piscina's entry for the copy workers. piscina loads a worker module with require(); for an ES
// module that goes through Node 20's require(esm), which aborts the whole process (an assertion
// in ModuleWrap) when the pool ends a worker that is still loading. A CommonJS entry that
// import()s the task module avoids that path.
'use strict';
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const task = import(pathToFileURL(path.join(__dirname, '..', 'dist', 'worker', 'copy-task.js')).href);

module.exports = async function copyTask(t) {
  return (await task).default(t);
};
