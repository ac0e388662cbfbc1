export { KServeSidecarBackend, type KServeSidecarOptions, type SidecarHealth } from './kserve-sidecar-backend.ts';
export { SidecarLoadedModel } from './sidecar-loaded-model.ts';
export { KServeHttp, type HttpAnswer, type KServeHttpOptions } from './kserve-http.ts';
export { artifactFileName, configPbtxt, placeModel, removeModel, repositoryName, REPOSITORY_VERSION } from './repository-layout.ts';
