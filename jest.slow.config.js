// `npm run test:slow`: the suites too slow for `npm test` (a whole benchmark run, the deployment zip).
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.slow.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
